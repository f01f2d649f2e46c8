"""Closing the loop: people review what ``kgmm complete`` proposed, through the store contract only.

``queue`` lists open proposals and orders products by what a review is worth, and turns a
person's accept / reject into a store decision; ``evidence`` says why a value was proposed (the
words of the product that support it, the most similar products carrying it). Import-light: no
torch, so ``kgmm review`` and ``kgmm serve`` start fast.
"""

from .queue import (
    DECISION_COLUMNS,
    PROPOSAL_COLUMNS,
    Filters,
    Proposal,
    QueueItem,
    best_per_pair,
    decide,
    decision_rows,
    open_proposals,
    review_queue,
    reviewer_name,
    worth,
)

__all__ = [
    "DECISION_COLUMNS",
    "PROPOSAL_COLUMNS",
    "Filters",
    "Proposal",
    "QueueItem",
    "best_per_pair",
    "decide",
    "decision_rows",
    "open_proposals",
    "review_queue",
    "reviewer_name",
    "worth",
]
