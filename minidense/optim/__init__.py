"""Optimizers and learning-rate schedules.

    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                          weight_decay=1e-4)
    scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=[150, 225])

    loss.backward(); optimizer.step(); optimizer.zero_grad()     # every batch
    scheduler.step()                                             # every epoch

optimizer.py (param groups, state, state_dict) -> sgd.py, adam.py (update rules) -> lr_scheduler.py.
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
