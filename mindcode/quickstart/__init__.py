"""The quickstart: the whole pipeline on the embedded tiny default, and its report."""
