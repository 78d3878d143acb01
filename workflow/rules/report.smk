# Rules that gather figures and tables of several modules for the report.
