"""The exchange's operations in plain Python: no HTTP, no GraphQL.

Every function takes the :class:`~ngshare_gql.roles.Caller` and checks its role
in the course it names before doing anything; mutations commit their own unit of
work and write an audit event.
"""
