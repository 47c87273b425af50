"""The Streamlit pages (run as scripts by app/main.py through st.navigation): thin views over cardio_core.queries."""
