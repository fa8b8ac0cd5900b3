"""The written notices of cases as printable PDFs (承诺件告知单, 补正, 延期, 不予办理, 代办承办单, 一次性告知书, 办事指南)."""
