"""Models as data: inputs and length distributions, tokenizers trained offline, checkpoint folders
(whole or in tensor-parallel slices), random weights.  Imports ``engine`` and below."""
