"""The salad Streamlit dashboard: entrypoint `dashboard/app.py`, pages in the repository-root `pages/` folder."""
