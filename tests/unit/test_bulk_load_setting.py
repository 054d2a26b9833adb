"""KG_BULK_LOAD_RATIO: read from the environment, refused when negative."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kg.settings import DEFAULT_BULK_LOAD_RATIO, Settings


def test_bulk_load_ratio_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("KG_BULK_LOAD_RATIO", raising=False)
    assert Settings().bulk_load_ratio == DEFAULT_BULK_LOAD_RATIO
    monkeypatch.setenv("KG_BULK_LOAD_RATIO", "0.25")
    assert Settings().bulk_load_ratio == 0.25


def test_a_negative_bulk_load_ratio_is_refused(monkeypatch):
    monkeypatch.setenv("KG_BULK_LOAD_RATIO", "-1")
    with pytest.raises(ValidationError, match="bulk_load_ratio"):
        Settings()
