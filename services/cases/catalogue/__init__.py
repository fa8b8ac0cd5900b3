"""Departments (窗口单位), the item catalogue (事项目录) and the public guide (办事指南) of the cases service."""
