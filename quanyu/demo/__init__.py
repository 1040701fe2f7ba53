"""Demo datasets for trying Quanyu without real customer data."""
