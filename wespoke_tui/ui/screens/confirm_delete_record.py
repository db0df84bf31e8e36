"""Delete the ended call's record from the call history? y/Enter deletes, n/Esc keeps it."""

from __future__ import annotations

from wespoke_tui.i18n import Texts
from wespoke_tui.ui.screens.confirm_hang_up import ConfirmHangUp


class ConfirmDeleteRecord(ConfirmHangUp):
    """The hang-up dialog's keys and safe default ("No"), with the words of a delete."""

    def __init__(self, texts: Texts) -> None:
        super().__init__(texts, "confirm.delete_record", "confirm.delete_yes", "confirm.delete_no")
