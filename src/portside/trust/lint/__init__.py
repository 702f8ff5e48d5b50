"""Image lint, the bakery's gates: rules over an image's layers and config (`image`) and
over a Dockerfile (`dockerfile`), each finding with a rule id, a severity and the layer or
line (`rules` is the catalogue)."""
