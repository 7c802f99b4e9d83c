"""Convert: arrives with its issue."""

import streamlit as st

st.title("Convert")
st.info("Not built yet.")
