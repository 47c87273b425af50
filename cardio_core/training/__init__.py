"""Fine-tuning: augmentation, optimiser/schedule, Lightning modules and data modules, recipes, MDM pre-training."""
