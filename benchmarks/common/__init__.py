"""Pieces shared by learnloop's benchmarks: process control, CPU accounting, load generation.

Run benchmark scripts from the repository root with learnloop's virtualenv; they put the root on
``sys.path`` and import these as ``benchmarks.common.<module>``.
"""
