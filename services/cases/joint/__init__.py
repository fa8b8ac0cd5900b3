"""Joint cases (联办件): sub-tasks per department, opinions, joint reviews, deemed consent (超时默认、缺席默认)."""
