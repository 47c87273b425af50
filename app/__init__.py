"""The CardioScope Streamlit app: `streamlit run app/main.py` (or `cardio app`)."""
