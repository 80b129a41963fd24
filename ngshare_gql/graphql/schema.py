"""The Strawberry schema with its limits on query size."""

from __future__ import annotations

from functools import partial

import strawberry
from graphql import GraphQLError, StringValueNode, ValidationRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionResult

from ngshare_gql.config import Settings
from ngshare_gql.graphql.errors import ErrorCodes, classify
from ngshare_gql.graphql.mutations import Mutation
from ngshare_gql.graphql.queries import Query
from ngshare_gql.graphql.scalars import SCALARS
from ngshare_gql.metrics import OperationMetrics


class NoNulStrings(ValidationRule):
    """String literals in the query may not hold NUL either (see the view for variables)."""

    def enter_string_value(self, node: StringValueNode, *_args) -> None:
        if "\x00" in node.value:
            self.report_error(GraphQLError("strings must not contain NUL characters", node))


class Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        """Expected errors are the client's business; :class:`ErrorCodes` logs the rest."""

    def execute_sync(self, *args, **kwargs) -> ExecutionResult:
        """Errors raised inside an extension (a fragment chain too deep for the depth
        limiter's recursion) bypass :class:`ErrorCodes`: classify them here too."""
        result = super().execute_sync(*args, **kwargs)
        if result.errors:
            result.errors = [
                e if (e.extensions or {}).get("code") else classify(e) for e in result.errors
            ]
        return result


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    # The limits' validation rules, made once: the limiter extensions would make new
    # rule classes for every request, and validation results can only be cached for
    # the same rules.  (Clients repeat a few operations; parsing and validating them
    # anew was a quarter of a small query's time.)
    rules = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
        NoNulStrings,
    ]
    return Schema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(scalar_map=SCALARS),
        extensions=[
            OperationMetrics,  # first: sees the final error codes
            partial(AddValidationRules, rules),
            partial(MaxTokensLimiter, max_token_count=settings.max_tokens),
            ErrorCodes,
            partial(ParserCache, maxsize=256),
            partial(ValidationCache, maxsize=256),
        ],
    )


schema = build_schema()


if __name__ == "__main__":  # python -m ngshare_gql.graphql.schema > schema.graphql
    print(schema.as_str())
