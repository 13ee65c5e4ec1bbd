"""Data loading, LR generation (MATLAB imresize) and datasets."""
