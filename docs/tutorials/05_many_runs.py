# %% [markdown]
# # 05_many_runs

# %%
print(1)
