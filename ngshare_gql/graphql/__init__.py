"""The GraphQL API: thin Strawberry resolvers over :mod:`ngshare_gql.domain`."""
