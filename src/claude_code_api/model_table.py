"""Which model id each kind of upstream credential knows for each gateway model name; pure.

A client asks for a gateway name (`sonnet`, `claude-sonnet-4-5`, `gpt-4`); a Bedrock credential's
upstream knows that model as `us.anthropic.claude-sonnet-4-5-20250929-v1:0`, a Vertex one as
`claude-sonnet-4-5@20250929`. The id comes from, first to last: the credential's own pins (for the
families), the operator's table (MODEL_TABLE, parsed by `parse_model_table`), the built-in table below.
First-party kinds (subscription, Console API key, Foundry) take names they have no entry for as they
are; Bedrock and Vertex serve only names with an entry.

The built-in ids are Claude Code's own (its baked model catalog, CLI 2.1.337): each model's `bedrock`
and `vertex` provider id, and for the families the model its alias table names per provider. So a
pinned process runs the model an unpinned one would have chosen, without the three probe calls an
unpinned Bedrock or Vertex process sends at every start (shared/CLAUDE-CODE.md §13).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from claude_code_api.catalog import CLAUDE_FAMILIES, OPENAI_ALIASES, model_ids, resolve_model
from claude_code_api.errors import GatewayError, ModelTableError
from claude_code_api.upstream import CREDENTIAL_KINDS, CredentialKind, UpstreamCredential

Ranks = tuple[tuple[UpstreamCredential, ...], ...]
# An operator's entries: per kind, gateway model name to upstream id, None where the kind does not
# serve the model (written "" in the file).
ModelEntries = Mapping[CredentialKind, Mapping[str, str | None]]

# Kinds whose upstream knows the gateway's names as they are.
FIRST_PARTY_KINDS: frozenset[CredentialKind] = frozenset({"subscription", "anthropic-api-key", "foundry"})

# Claude Code's ids by the gateway names that mean each model: (names, Bedrock id in its `us.`
# form, Vertex id). The dated first-party names are served but not listed (as with first-party kinds).
_CLAUDE_CODE_IDS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (
        ("claude-opus-4-5", "claude-opus-4-5-20251101"),
        "us.anthropic.claude-opus-4-5-20251101-v1:0",
        "claude-opus-4-5@20251101",
    ),
    (
        ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "claude-sonnet-4-5@20250929",
    ),
    (
        ("claude-haiku-4-5", "claude-haiku-4-5-20251001"),
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "claude-haiku-4-5@20251001",
    ),
    (("claude-opus-4-1-20250805",), "us.anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1@20250805"),
    (("claude-sonnet-4-20250514",), "us.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4@20250514"),
    (
        ("claude-3-7-sonnet-20250219",),
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "claude-3-7-sonnet@20250219",
    ),
    (
        ("claude-3-5-haiku-20241022",),
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "claude-3-5-haiku@20241022",
    ),
    # The families: what Claude Code's alias table names on Bedrock (opus 5.5, sonnet 4.5, haiku 4.5)
    # and on Vertex (opus 5.5, sonnet 5.5, haiku 4.5).
    (("opus",), "us.anthropic.claude-opus-5-5", "claude-opus-5-5"),
    (("sonnet",), "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-5-5"),
    (("haiku",), "us.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5@20251001"),
)

BUILT_IN_IDS: Mapping[CredentialKind, Mapping[str, str]] = MappingProxyType(
    {
        "bedrock": MappingProxyType({name: ids[1] for ids in _CLAUDE_CODE_IDS for name in ids[0]}),
        "vertex": MappingProxyType({name: ids[2] for ids in _CLAUDE_CODE_IDS for name in ids[0]}),
    }
)

# Bedrock's cross-region inference prefixes, as Claude Code knows them.
BEDROCK_GEOGRAPHIES = ("us", "eu", "apac", "jp", "au", "us-gov", "global")


def bedrock_geography(region: str) -> str:
    """The cross-region inference prefix Claude Code puts before a Bedrock model id for an AWS region:
    `us-gov` for us-gov-*, `us` for us-*, `eu` for eu-*, `apac` for ap-*, else `global`."""
    for prefix, geography in (("us-gov-", "us-gov"), ("us-", "us"), ("eu-", "eu"), ("ap-", "apac")):
        if region.startswith(prefix):
            return geography
    return "global"


def _in_geography(model_id: str, geography: str) -> str:
    """A built-in Bedrock id moved to a geography's profile (`us.anthropic.…` → `eu.anthropic.…`)."""
    for known in BEDROCK_GEOGRAPHIES:
        if model_id.startswith(f"{known}.anthropic."):
            return f"{geography}.{model_id.removeprefix(f'{known}.')}"
    return model_id


def _built_in_id(credential: UpstreamCredential, claude_model: str) -> str | None:
    """The built-in id of a gateway model name for the credential's kind and region, or None."""
    built_in = BUILT_IN_IDS.get(credential.kind, {}).get(claude_model)
    if built_in is not None and credential.kind == "bedrock" and credential.region:
        return _in_geography(built_in, bedrock_geography(credential.region))
    return built_in


@dataclass(frozen=True)
class ModelTable:
    """The upstream model ids of every kind: the operator's entries over the built-in ones."""

    operator: ModelEntries = field(default_factory=dict)
    # Where the operator's entries came from, for doctor and the log; None: built-in ids only.
    source: str | None = None

    def upstream_model(self, credential: UpstreamCredential, claude_model: str) -> str | None:
        """The id `credential`'s upstream knows for a gateway model name (as `resolve_model` gives it),
        or None when the credential does not serve it."""
        if claude_model in CLAUDE_FAMILIES:
            pinned: str | None = getattr(credential.models, claude_model)
            if pinned:
                return pinned
        entries = self.operator.get(credential.kind, {})
        if claude_model in entries:
            return entries[claude_model]
        built_in = _built_in_id(credential, claude_model)
        if built_in is None and credential.kind in FIRST_PARTY_KINDS:
            return claude_model
        return built_in

    def pinned(self, credential: UpstreamCredential) -> UpstreamCredential:
        """The credential with each family's id pinned (its own pin, else the table's), so that its
        processes neither guess nor probe. A family the operator marked unserved keeps the built-in id:
        no request asks for it there, and the pin still spares the probe. First-party kinds without an
        entry stay unpinned: Claude Code knows the names there."""
        pins = {
            family: getattr(credential.models, family)
            or self.operator.get(credential.kind, {}).get(family)
            or _built_in_id(credential, family)
            for family in CLAUDE_FAMILIES
        }
        return replace(credential, models=replace(credential.models, **pins))

    def serving(self, ranks: Ranks, claude_model: str) -> Ranks:
        """The ranks with only the credentials that serve a gateway model name; emptied ranks go."""
        kept = (tuple(c for c in rank if self.upstream_model(c, claude_model) is not None) for rank in ranks)
        return tuple(rank for rank in kept if rank)

    def reaches(self, credentials: Iterable[UpstreamCredential], name: str) -> bool:
        """Whether one of `credentials` serves a model name a client may ask for (an alias counts when
        its target is served); raises ModelNotFoundError for a name the gateway does not know."""
        claude_model = resolve_model(name).claude_model
        return any(self.upstream_model(c, claude_model) is not None for c in credentials)

    def reachable_models(self, credentials: Iterable[UpstreamCredential]) -> list[str]:
        """What /v1/models lists for a key on `credentials`: the catalog's ids and the operator's added
        names that one of them serves, in the catalog's order."""
        credentials = tuple(credentials)
        added = {name for entries in self.operator.values() for name in entries}
        return [name for name in model_ids(added) if self.reaches(credentials, name)]


BUILT_IN_MODELS = ModelTable()


def parse_model_table(text: str, source: str) -> ModelTable:
    """Reads an operator's model table: a TOML table per credential kind mapping gateway model names to
    that kind's upstream ids, "" for a model the kind does not serve. Raises ModelTableError with one
    line naming `source` and the first problem."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelTableError(f"{source} is not valid TOML: {exc}") from None
    operator: dict[CredentialKind, Mapping[str, str | None]] = {}
    for kind_name, section in document.items():
        kind = _kind(kind_name, source)
        if not isinstance(section, dict):
            raise ModelTableError(f"{source}: {kind_name} must be a table ([{kind_name}]) of model names")
        entries: dict[str, str | None] = {}
        for name, value in section.items():
            where = f"{source}: [{kind}] {name}"
            _check_name(name, where)
            entries[name] = _upstream_id(value, where)
        operator[kind] = MappingProxyType(entries)
    return ModelTable(MappingProxyType(operator), source)


def _kind(name: str, source: str) -> CredentialKind:
    for kind in CREDENTIAL_KINDS:
        if kind == name:
            return kind
    raise ModelTableError(
        f"{source}: [{name}] is not a credential kind; expected {', '.join(CREDENTIAL_KINDS)}"
    )


def _check_name(name: str, where: str) -> None:
    if name in OPENAI_ALIASES:
        raise ModelTableError(f"{where}: an OpenAI alias of {OPENAI_ALIASES[name]}; map that name instead")
    try:
        resolve_model(name)
    except GatewayError:
        raise ModelTableError(
            f"{where}: not a model name the gateway accepts (a family or a full claude-… id)"
        ) from None


def _upstream_id(value: object, where: str) -> str | None:
    if not isinstance(value, str):
        raise ModelTableError(f'{where}: must be a model id in quotes ("" when the kind does not serve it)')
    if value != value.strip() or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ModelTableError(f"{where}: a model id has no blanks or control characters")
    return value or None
