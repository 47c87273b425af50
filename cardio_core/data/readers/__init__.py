"""Readers for Chapman, PTB-XL and ACDC, and writers of their exact on-disk formats."""
