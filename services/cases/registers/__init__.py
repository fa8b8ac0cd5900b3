"""The registers beside cases: one-time notices (一次性告知书), inquiries (首问), agency (全程代办), the public board."""
