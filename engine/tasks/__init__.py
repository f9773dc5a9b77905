"""The paper's synthetic tasks, by name."""
from engine.tasks.addition import AdditionTask
from engine.tasks.base import DataSplit, Task, TaskInputError, Verdict
from engine.tasks.counting import CountingTask

TASKS: dict[str, Task] = {"counting": CountingTask(), "addition": AdditionTask()}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise TaskInputError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


__all__ = ["TASKS", "get_task", "Task", "TaskInputError", "Verdict", "DataSplit",
           "CountingTask", "AdditionTask"]
