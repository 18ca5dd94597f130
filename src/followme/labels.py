"""The three classes of the RoboND masks, as the course numbered them: the channel of a mask PNG,
the class index of a label array and of a model's output."""

BACKGROUND, PEOPLE, HERO = 0, 1, 2
CLASSES = ("background", "people", "hero")
NUM_CLASSES = len(CLASSES)
ON_ABOVE = 127  # a mask or prediction PNG channel is on above this (the course's p > 0.5)
