"""Fine-tuning: augmentation, optimiser/schedule, Lightning modules and data modules, recipes, MDM pre-training.

Submodules import torch/Lightning; import them directly (e.g. `from cardio_core.training.modules
import EcgFinetuneModule`) so that `import cardio_core.training` stays cheap.
"""
