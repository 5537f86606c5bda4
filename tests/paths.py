"""Where the tests find things: the one definition of the repository root and the published fixtures.

The fixtures live beside the clone, in `../shared/fixtures` (see its SOURCES.md), and are read by path.
This module imports nothing, so fakes, benches and client tests can all use it.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
EVENTS_DIR = REPO_ROOT / "events"
FIXTURES_DIR = REPO_ROOT.parent / "shared" / "fixtures"
