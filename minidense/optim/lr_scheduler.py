"""Learning-rate schedules: ``StepLR``, ``MultiStepLR``, ``CosineAnnealingLR`` (PyTorch semantics).

    scheduler = MultiStepLR(optimizer, milestones=[150, 225], gamma=0.1)   # DenseNet, 300 epochs
    for epoch in range(300):
        train_one_epoch(...)
        scheduler.step()            # once per epoch, after training

Building a scheduler keeps the optimizer's lr as the initial lr (``last_epoch = 0``); each
``step()`` adds one to ``last_epoch`` and sets every group's lr from a closed form of
(initial lr, last_epoch). Because the lr is recomputed from the initial one, a manual change to
``group["lr"]`` lasts only until the next ``step()``.
"""
import bisect
import math


class LRScheduler:
    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError("resuming a scheduler (last_epoch != -1) needs 'initial_lr' in "
                               "every param group; load the optimizer's state_dict first")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr, epoch):
        """The learning rate after ``epoch`` steps for a group that started at ``base_lr``."""
        raise NotImplementedError

    def get_lr(self):
        return [self.lr_at(base_lr, self.last_epoch) for base_lr in self.base_lrs]

    def step(self):
        """Advance one epoch and set the optimizer's learning rates."""
        self.last_epoch += 1
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self):
        """The learning rates set by the latest ``step()`` (one per param group)."""
        return list(self._last_lr)

    def state_dict(self):
        """Plain values (numbers, lists): everything but the optimizer."""
        return {k: (list(v) if isinstance(v, (list, tuple)) else v)
                for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ** (epoch // step_size): divide by 1/gamma every step_size epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive number of epochs, "
                             f"got {step_size}")
        self.step_size, self.gamma = int(step_size), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """lr = initial_lr * gamma ** (number of milestones <= epoch).

    DenseNet: ``milestones=[epochs // 2, epochs * 3 // 4]``, gamma 0.1.
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones, self.gamma = sorted(int(m) for m in milestones), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.

    Falls from the initial lr to eta_min over T_max epochs (the closed form; past T_max it rises
    again along the same cosine).
    """

    def __init__(self, optimizer, T_max, eta_min=0, last_epoch=-1):
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be > 0, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch /
                                                                       self.T_max)) / 2
