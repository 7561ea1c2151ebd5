"""The SQL runner and its warm zygote: a pipeline's inputs, steps and outputs on DuckDB, in the attempt's child."""
