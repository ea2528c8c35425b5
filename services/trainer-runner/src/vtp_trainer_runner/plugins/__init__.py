"""Trainer plugins, one module per framework; registered in `vtp_trainer_runner.plugin`."""
