"""The paper's synthetic tasks, by name, and free text for real language models."""
from engine.tasks.addition import AdditionTask
from engine.tasks.base import DataSplit, Task, TaskInputError, Verdict
from engine.tasks.counting import CountingTask
from engine.tasks.text import TEXT_TASK, TextTask

TASKS: dict[str, Task] = {"counting": CountingTask(), "addition": AdditionTask()}
_UNBOUND_TEXT = TextTask()  # names and columns only; a loaded text model carries its own (tokenizer)


PROMPTS = ("ioi",)  # prompt distributions a text model's inputs can follow


def prompt_task_class(prompts: str | None) -> type[TextTask]:
    """The text task class for a prompt distribution (None: free text)."""
    if prompts is None:
        return TextTask
    if prompts == "ioi":
        from engine.tasks.ioi import IOITask

        return IOITask
    raise TaskInputError(f"unknown prompts {prompts!r}; known: {', '.join(PROMPTS)}")


def get_task(name: str) -> Task:
    """A synthetic task, or (for "text") the text task's fixed attributes without a tokenizer."""
    if name == TEXT_TASK:
        return _UNBOUND_TEXT
    try:
        return TASKS[name]
    except KeyError:
        raise TaskInputError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}, {TEXT_TASK}") from None


__all__ = ["TASKS", "PROMPTS", "prompt_task_class", "get_task", "Task", "TaskInputError", "Verdict", "DataSplit",
           "CountingTask", "AdditionTask", "TextTask", "TEXT_TASK"]
