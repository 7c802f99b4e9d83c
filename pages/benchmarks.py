"""Benchmarks: arrives with its issue."""

import streamlit as st

st.title("Benchmarks")
st.info("Not built yet.")
