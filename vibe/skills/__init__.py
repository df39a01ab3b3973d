"""Agent Skills: folders holding SKILL.md (YAML front matter + instructions) that the model loads
with the `skill` tool and the user runs as `/name args`."""

from vibe.skills.discovery import SkillSet, discover, load_skills, search_dirs
from vibe.skills.invoke import Invocation, TurnRules, expand, skills_prompt, tool_rules
from vibe.skills.parse import Skill, SkillError, parse_skill

__all__ = [
    "Invocation",
    "Skill",
    "SkillError",
    "SkillSet",
    "TurnRules",
    "discover",
    "expand",
    "load_skills",
    "parse_skill",
    "search_dirs",
    "skills_prompt",
    "tool_rules",
]
