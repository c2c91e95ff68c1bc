"""The Spark medallion jobs' logic: pure transformations (silver.py) and the jobs around them."""
