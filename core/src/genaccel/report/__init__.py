"""Reports: typed results and their schema, the store on disk, Markdown tables, plots, the study's
tables, comparisons, the environment block.  Imports ``engine`` and ``plugin`` and below."""
