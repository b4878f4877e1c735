"""MuJoCo Go2 authored in this project: the model (`model`), the in-process simulator (`env`), and the
DDS bridge that makes it look like the robot on rt/lowstate / rt/lowcmd (`bridge`)."""
