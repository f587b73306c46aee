# expect: importing the agent file raised ValueError: no such setting
import plait
from _tools import done, up


raise ValueError('no such setting')
