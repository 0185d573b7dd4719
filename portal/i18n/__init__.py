"""Languages: the locales, labels of configured rows, the domain's wording, the catalogues."""
