"""Code prompts for EAGLE heads: a few hundred distinct training requests built from task phrases
and request templates, so the head sees many answers rather than a few answers many times, and
the benchmark's held-out prompts (`BENCH_PROMPTS`, used by `bench_spec.py`), never produced for
training."""

from __future__ import annotations

import random

BENCH_PROMPTS = [  # held out: never in training_prompts()
    "Write a Python function that returns the n-th triangular number.",
    "Implement a stack-based checker for balanced parentheses in Python.",
    "Write a Python function that counts the vowels in a string.",
    "Implement selection sort in Python.",
    "Write a Python class for a binary tree node with an insert method.",
    "Write a function that reverses the words in a sentence.",
    "Write a Python function that computes the factorial of n recursively.",
    "Write a Python function that checks whether a number is prime.",
]

FUNCTION_TASKS = [
    "checks whether a string is a palindrome",
    "merges two sorted lists",
    "counts word frequencies in a text",
    "computes the nth Fibonacci number iteratively",
    "flattens a nested list",
    "validates an email address with a regular expression",
    "reads a CSV file and returns a list of dicts",
    "returns the prime numbers below n",
    "converts a Roman numeral to an integer",
    "removes duplicates from a list while keeping order",
    "computes the greatest common divisor of two numbers",
    "parses a query string into a dictionary",
    "transposes a matrix",
    "finds the longest common prefix of a list of strings",
    "returns the maximum value in a list without using max",
    "converts Celsius to Fahrenheit",
    "checks whether two strings are anagrams",
    "finds the second largest number in a list",
    "counts the occurrences of each character in a string",
    "capitalizes the first letter of every word",
    "returns the sum of the digits of a number",
    "checks whether a year is a leap year",
    "converts a decimal number to binary",
    "computes the average of a list of numbers",
    "finds the intersection of two lists",
    "rotates a list by k positions",
    "checks whether a list is sorted",
    "returns the n largest elements of a list",
    "splits a list into chunks of size n",
    "computes the median of a list",
    "generates all permutations of a string",
    "generates all subsets of a set",
    "computes the power set of a list",
    "finds the most common element in a list",
    "converts a string to snake_case",
    "converts a string to camelCase",
    "counts the lines in a file",
    "reverses a linked list",
    "finds the missing number in a list from 1 to n",
    "checks whether a number is a perfect square",
    "computes the least common multiple of two numbers",
    "returns the Collatz sequence of a number",
    "compresses a string with run-length encoding",
    "decodes a run-length encoded string",
    "validates a Sudoku row",
    "computes the dot product of two vectors",
    "finds all pairs in a list that sum to a target",
    "returns the index of the first duplicate",
    "groups a list of words by their first letter",
    "sorts a list of dictionaries by a key",
    "merges two dictionaries",
    "inverts a dictionary",
    "finds the longest word in a sentence",
    "counts the words in a string",
    "truncates a string to n characters with an ellipsis",
    "checks whether a string contains only digits",
    "computes the Hamming distance between two strings",
    "computes the Levenshtein distance between two strings",
    "returns the running sum of a list",
    "finds the peak element of a list",
    "removes all whitespace from a string",
    "pads a number with leading zeros",
    "formats a number of seconds as hours, minutes and seconds",
    "parses a date string in ISO format",
    "returns the number of days between two dates",
    "evaluates a postfix expression",
    "converts an integer to a Roman numeral",
    "finds the longest increasing subsequence",
    "computes the maximum subarray sum",
    "finds the k-th smallest element of a list",
    "shuffles a list in place",
    "samples k random elements from a list",
    "computes the factorial of n iteratively",
    "computes binomial coefficients",
    "prints Pascal's triangle",
    "checks whether a number is an Armstrong number",
    "returns the prime factors of a number",
    "computes the square root of a number with Newton's method",
    "clamps a value between a minimum and a maximum",
    "normalizes a list of numbers to the range 0 to 1",
    "computes the standard deviation of a list",
    "counts the vowels and consonants in a string",
    "reads a JSON file and returns its contents",
    "writes a list of dicts to a CSV file",
    "downloads a web page with the requests library",
    "lists all files in a directory recursively",
    "finds the largest file in a directory",
    "retries a function call up to three times",
    "memoizes another function",
    "chunks a string into lines of at most n characters",
    "checks whether a point is inside a rectangle",
    "computes the area of a polygon",
    "converts a hexadecimal color to RGB",
    "generates a random password",
    "validates an IPv4 address",
    "extracts all URLs from a text",
    "counts the number of set bits in an integer",
    "checks whether a graph has a cycle",
    "performs a topological sort",
    "finds the shortest path in an unweighted graph",
]

CLASS_TASKS = [
    "a stack with push, pop and peek",
    "a queue implemented with two stacks",
    "a simple LRU cache",
    "a bank account with deposit and withdraw methods",
    "a 2D point with a distance method",
    "a linked list with append and remove",
    "a priority queue based on heapq",
    "a matrix with addition and multiplication",
    "a simple to-do list",
    "a rectangle with area and perimeter",
    "a counter that can be incremented and reset",
    "a min-heap",
    "a trie with insert and search",
    "a deck of playing cards with shuffle and deal",
    "a temperature converter",
    "a rate limiter",
    "a simple event emitter",
    "a timer context manager",
    "an inventory of products with quantities",
]

ALGORITHMS = [
    "binary search", "quicksort", "merge sort", "insertion sort", "bubble sort", "heap sort",
    "counting sort", "breadth-first search", "depth-first search", "Dijkstra's algorithm",
    "the sieve of Eratosthenes", "Kadane's algorithm", "the knapsack problem with dynamic "
    "programming", "the Tower of Hanoi", "Floyd's cycle detection", "union-find",
]  # fmt: skip

LANGUAGES = ["Python", "Python", "Python", "Python", "JavaScript", "TypeScript", "Go", "Rust"]

FUNCTION_TEMPLATES = [
    "Write a {lang} function that {task}.",
    "Write a {lang} function that {task}, with a docstring.",
    "Implement a {lang} function that {task}.",
    "Write a short {lang} function that {task} and show an example call.",
    "Create a function in {lang} that {task}.",
]
CLASS_TEMPLATES = [
    "Write a {lang} class for {task}.",
    "Implement {task} as a {lang} class.",
    "Create a {lang} class representing {task}.",
]
ALGO_TEMPLATES = [
    "Implement {task} in {lang}.",
    "Write {task} in {lang} and explain its complexity.",
    "Show a {lang} implementation of {task}.",
]

EXTRA = [
    "Write a SQL query that finds the second highest salary in an employees table.",
    "Write a bash script that renames all .txt files in a folder to .md.",
    "Write a unit test with pytest for a function that adds two numbers.",
    "Write a Python decorator that times a function call.",
    "Write a Python generator that yields the lines of a file in reverse order.",
    "Write a JavaScript function that debounces another function.",
    "Write a Python script that prints the numbers from 1 to 100, with Fizz and Buzz.",
    "Write a Dockerfile for a small Python web application.",
    "Write a Python command-line tool with argparse that greets a user.",
    "Write a regular expression that matches a US phone number, with a Python example.",
]


def training_prompts(
    n: int, seed: int = 0, exclude: frozenset[str] = frozenset(BENCH_PROMPTS)
) -> list[str]:
    """`n` distinct prompts (fewer if the templates run out), deterministic for a seed."""
    rng = random.Random(seed)
    pool: set[str] = set(EXTRA)
    groups = (
        (FUNCTION_TASKS, FUNCTION_TEMPLATES),
        (CLASS_TASKS, CLASS_TEMPLATES),
        (ALGORITHMS, ALGO_TEMPLATES),
    )
    for tasks, templates in groups:
        for task in tasks:
            for template in templates:
                for lang in dict.fromkeys(LANGUAGES):
                    pool.add(template.format(lang=lang, task=task))
    pool -= exclude
    ordered = sorted(pool)
    rng.shuffle(ordered)
    # Mostly Python, like the benchmark; other languages for variety.
    python = [p for p in ordered if "Python" in p or "python" in p]
    other = [p for p in ordered if p not in set(python)]
    n_other = n // 5
    return (python[: n - min(n_other, len(other))] + other[:n_other])[:n]
