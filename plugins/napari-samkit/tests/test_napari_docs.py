"""The keys a user reads (the napari page, the dock's key help) are the keys samkit.interaction gives napari."""

from pathlib import Path

from samkit import interaction

PAGE = Path(__file__).resolve().parents[3] / "docs" / "content" / "napari.md"


def test_the_docs_and_the_key_help_list_every_key():
    from napari_samkit._widget import key_help, key_table

    page, shown, table = PAGE.read_text(), key_help(), key_table()
    for name, action in interaction.ACTIONS.items():
        if action.napari == interaction.NONE:
            continue
        assert f"`{action.key}`" in page, f"docs/content/napari.md does not list {action.key} ({name})"
        assert f"<b>{action.key}</b>" in shown and f"<b>{action.key}</b>" in table, name
