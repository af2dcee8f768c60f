"""What the routes call: uploads, datasets, splits, jobs, models, prediction."""
