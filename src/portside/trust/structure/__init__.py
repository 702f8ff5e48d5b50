"""Image structure tests in container-structure-test's schema (2.0.0): the file (`spec`),
the image's final filesystem read from its layers (`tree`), and the runner (`run`)."""
