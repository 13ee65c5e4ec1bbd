"""SR models: backbones (EDSR, RCAN), plug-in units (dynamic HPF, CA/FCA/MMCA) and their registries
(`sr_lit.models.registry`). Import the submodules directly."""
