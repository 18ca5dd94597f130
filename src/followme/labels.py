"""The three classes of the RoboND masks, as the course numbered them: the channel of a mask PNG,
the class index of a label array and of a model's output."""

BACKGROUND, PEOPLE, HERO = 0, 1, 2
CLASSES = ("background", "people", "hero")
NUM_CLASSES = len(CLASSES)
