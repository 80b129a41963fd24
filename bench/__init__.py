"""Side-by-side benchmark of ngshare-gql against ngshare 0.6.0: ``python -m bench --help``."""
