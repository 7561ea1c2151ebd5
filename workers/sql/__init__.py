"""The SQL runners (DuckDB, with its warm zygote; Spark) and their datasets: a pipeline in the attempt's child."""
