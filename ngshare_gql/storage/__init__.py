"""Byte storage: uploads staged while they stream in, and content-addressed blob stores."""
