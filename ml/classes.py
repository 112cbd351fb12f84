"""The seven HAM10000 diagnostic classes, in the order every model and report uses."""

CLASSES: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")

CLASS_NAMES: dict[str, str] = {
    "akiec": "Actinic keratoses and intraepithelial carcinoma (Bowen's disease)",
    "bcc": "Basal cell carcinoma",
    "bkl": "Benign keratosis-like lesions",
    "df": "Dermatofibroma",
    "mel": "Melanoma",
    "nv": "Melanocytic nevi",
    "vasc": "Vascular lesions",
}

NUM_CLASSES = len(CLASSES)

# (code, name) pairs, e.g. for a form's or a database field's choices.
CLASS_CHOICES: list[tuple[str, str]] = [(code, CLASS_NAMES[code]) for code in CLASSES]

# The malignant (or pre-malignant) classes: a lesion likely to be one of them is referred.
MALIGNANT_CLASSES: tuple[str, ...] = ("akiec", "bcc", "mel")
