"""Training callbacks: early stopping as a recipe's patience configures it."""


def test_early_stopping_stops_after_patience_validations_without_a_higher_monitor():
    import lightning as Lg
    import torch
    from cardio_core.training.callbacks import early_stopping

    class Toy(Lg.LightningModule):
        def __init__(self, values):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.values = values

        def training_step(self, batch, i):
            return (self.w - 1).pow(2).sum()

        def validation_step(self, batch, i):
            pass

        def on_validation_epoch_end(self):
            self.log("val/mean_r", self.values[self.current_epoch])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self):
            return [torch.zeros(1)]

        def val_dataloader(self):
            return [torch.zeros(1)]

    def fit(values, patience):
        trainer = Lg.Trainer(max_epochs=len(values), callbacks=early_stopping(patience, "val/mean_r"), logger=False,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                             num_sanity_val_steps=0)
        trainer.fit(Toy(values))
        return trainer.current_epoch

    # higher is better: 0.5 is best at epoch 1, then 2 validations without a higher r -> stopped after epoch 3
    assert fit([0.2, 0.5, 0.4, 0.45, 0.9, 0.9], patience=2) == 4
    assert fit([0.2, 0.5, 0.4, 0.45, 0.9, 0.9], patience=0) == 6     # patience 0: no early stopping
    assert early_stopping(0, "val/mean_r") == []
