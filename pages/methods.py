"""Methods: what every number in the app means and how it is computed (the same text the report ends with)."""
import streamlit as st

from cardio_core.metrics.definitions import as_markdown

st.title("Methods")
st.caption("Every number on Overview, Compare and Metrics is defined here. They are computed in the encoders' "
           "embedding spaces by background jobs and read from the store; the app recomputes nothing.")
st.markdown(as_markdown())
