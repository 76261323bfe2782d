"""`Identities` (the expander's cached encoder) gives the documented ids byte for byte."""

from __future__ import annotations

from typing import Any

import pytest

from runner.identity import Identities, derive_seed, request_id

ENDPOINT = "/v2/generate/video/runway/generation"
MODEL = "runway/gen4_turbo"

BODIES: list[dict[str, Any]] = [
    {"prompt": "a harbour", "seed": 1, "duration": 5, "ratio": "16:9"},
    {"seed": 0}, {"seed": -7}, {"seed": 4294967295}, {"seed": 2**64 + 1}, {"seed": 10**300},
    {"seed": True}, {"seed": False}, {"seed": 1.0}, {"seed": -0.0}, {"seed": 0.0},
    {"seed": None}, {"seed": "1"}, {"seed": [1, 2]}, {"seed": {"b": 1, "a": 2}},
    {"prompt": "café — naïve \u2028 \"quoted\" \\ tab\t", "z": 1, "a": 2},
    {"prompt": "🐉", "n": 1.5e300, "m": -3},
]


@pytest.mark.parametrize("provider", ["aimlapi", "sandbox"])
def test_every_body_gets_the_documented_id_and_seed_twice_over(provider: str) -> None:
    identities = Identities()
    for _ in range(2):  # the second round reads what the first remembered
        for body in BODIES:
            rid = identities.request_id(provider, MODEL, ENDPOINT, body)
            assert rid == request_id(provider, MODEL, ENDPOINT, body), body
            rest = {k: v for k, v in body.items() if k != "seed"}
            seed = identities.derive_seed(provider, MODEL, ENDPOINT, rest)
            assert seed == derive_seed(provider, MODEL, ENDPOINT, rest), body


def test_an_int_is_never_taken_for_the_bool_or_float_of_the_same_value() -> None:
    identities = Identities()
    ids = {identities.request_id("aimlapi", MODEL, ENDPOINT, {"seed": v}) for v in (1, True, 1.0)}
    assert len(ids) == 3


def test_past_the_limit_values_are_encoded_each_time_alike() -> None:
    identities = Identities()
    identities.LIMIT = 3
    for n in range(10):
        body = {"prompt": f"shot {n}", "seed": n}
        assert identities.request_id("aimlapi", MODEL, ENDPOINT, body) == request_id(
            "aimlapi", MODEL, ENDPOINT, body
        )
    remembered = {name: texts for name, texts in identities._texts.items() if texts}
    assert list(remembered) == ["prompt"]  # ints: never kept
    assert len(remembered["prompt"]) == 3  # what it remembers stays bounded


def test_a_number_canonical_json_refuses_is_refused_alike() -> None:
    with pytest.raises(ValueError, match="JSON"):
        Identities().request_id("aimlapi", MODEL, ENDPOINT, {"seed": float("nan")})
    with pytest.raises(ValueError):
        request_id("aimlapi", MODEL, ENDPOINT, {"seed": 10**5000})  # more digits than str()
    with pytest.raises(ValueError):
        Identities().request_id("aimlapi", MODEL, ENDPOINT, {"seed": 10**5000})


def test_a_body_seen_before_is_hashed_without_encoding_anything_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Keys, texts and the provider/model/endpoint tail are encoded once and remembered."""
    import runner.identity

    calls: list[object] = []
    encode = runner.identity.canonical_json

    def counting(obj: object) -> bytes:
        calls.append(obj)
        return encode(obj)

    monkeypatch.setattr(runner.identity, "canonical_json", counting)
    identities = Identities()
    body = {"prompt": "a harbour", "ratio": "16:9", "loop": False, "seed": 3}
    first = identities.request_id("aimlapi", MODEL, ENDPOINT, body)
    assert calls  # the first time, everything is encoded
    calls.clear()
    again = identities.request_id("aimlapi", MODEL, ENDPOINT, {**body, "seed": 4})
    assert calls == [] and first != again
    assert again == request_id("aimlapi", MODEL, ENDPOINT, {**body, "seed": 4})


def test_a_body_with_keys_that_are_not_text_is_encoded_whole_alike() -> None:
    body: dict[Any, Any] = {1: "a", 2: "b"}
    for provider, model, endpoint in (("aimlapi", MODEL, ENDPOINT), ("sandbox", "m", "/e")):
        assert Identities().request_id(provider, model, endpoint, body) == request_id(
            provider, model, endpoint, body
        )


def test_derive_seed_refuses_a_body_that_has_its_seed() -> None:
    with pytest.raises(ValueError, match=r"^derive_seed\(\) takes the body without its seed$"):
        Identities().derive_seed("aimlapi", MODEL, ENDPOINT, {"seed": 1, "prompt": "x"})
