"""Apple MLX: mlx-lm conversions, the MLX runner and MLX folder imports."""
