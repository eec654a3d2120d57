"""Korean words for the labels that the chapters glue into their prose.

A chapter glues a label (a class name, a recipe's name) beside its Korean word, computed
from the same value, so that the Korean edition's sentences stay Korean when the label
changes (``glue("worst_class_ko", Markdown(korean(name)))``).
"""

KOREAN_LABELS = {
    # CIFAR-10's classes, as the Korean PyTorch tutorials name them
    "airplane": "비행기",
    "automobile": "자동차",
    "bird": "새",
    "cat": "고양이",
    "deer": "사슴",
    "dog": "개",
    "frog": "개구리",
    "horse": "말",
    "ship": "배",
    "truck": "트럭",
    # Chapter 6's training recipes
    "plain SGD": "기본 SGD",
    "momentum only": "모멘텀만 쓴 SGD",
    "cosine schedule only": "코사인 스케줄만 쓴 SGD",
    "momentum and cosine": "모멘텀과 코사인 스케줄을 함께 쓴 SGD",
}


def korean(label: str) -> str:
    """The Korean edition's word for a label the chapters print in English."""
    try:
        return KOREAN_LABELS[label]
    except KeyError:
        raise KeyError(f"no Korean word for {label!r}: add it to torchbook/korean.py") from None
